# dmgbuild settings for PostFlow's disk image: the app beside a link to Applications, over a
# background that says what to do. installers/macos/build.sh runs it:
#
#     dmgbuild -s installers/macos/dmg_settings.py -D app=dist/PostFlow.app "PostFlow" dist/PostFlow.dmg
#
# dmgbuild executes this file with ``defines`` (the -D values) in scope, from the checkout's root.
# ruff: noqa: F821
import os.path

application = defines.get("app", "dist/PostFlow.app")  # type: ignore[name-defined]
appname = os.path.basename(application)

format = "UDZO"  # compressed, read-only
filesystem = "HFS+"
files = [application]
symlinks = {"Applications": "/Applications"}
badge_icon = None
icon = defines.get("icon", "resources/icons/postflow.icns")  # type: ignore[name-defined]
background = defines.get("background", "installers/macos/dmg-background.png")  # type: ignore[name-defined]
window_rect = ((200, 120), (640, 400))
default_view = "icon-view"
show_status_bar = False
show_toolbar = False
show_pathbar = False
show_sidebar = False
icon_size = 128
text_size = 14
icon_locations = {appname: (160, 190), "Applications": (480, 190)}
