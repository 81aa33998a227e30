#!/bin/sh
# Install PostFlow for this user (no root): the bundle in ~/.local/opt/PostFlow, a menu entry
# and its icon. Run it again to update; ./install.sh --uninstall removes the program (your queue,
# history and settings in ~/.local/share/PostFlow and ~/.config/PostFlow are kept).
set -eu
HERE="$(cd "$(dirname "$0")" && pwd)"
DATA="${XDG_DATA_HOME:-$HOME/.local/share}"
TARGET="$HOME/.local/opt/PostFlow"
if [ "${1:-}" = "--uninstall" ]; then
    rm -rf "$TARGET" "$DATA/applications/postflow.desktop" "$DATA/icons/hicolor/512x512/apps/postflow.png"
    echo "PostFlow removed. Your queue and settings are kept."
    exit 0
fi
mkdir -p "$HOME/.local/opt" "$DATA/applications" "$DATA/icons/hicolor/512x512/apps"
rm -rf "$TARGET.new"
cp -a "$HERE/PostFlow" "$TARGET.new"
rm -rf "$TARGET"
mv "$TARGET.new" "$TARGET"
# Quoted, as the desktop entry spec wants a path that may hold spaces.
sed "s|^Exec=.*|Exec=\"$TARGET/postflow\"|" "$HERE/postflow.desktop" > "$DATA/applications/postflow.desktop"
cp "$HERE/postflow.png" "$DATA/icons/hicolor/512x512/apps/postflow.png"
echo "PostFlow installed in $TARGET; it is in your applications menu."
