#!/usr/bin/env bash
# Build PostFlow's macOS disk image from a checkout, on a Mac:
#
#     installers/macos/build.sh          # with .venv/bin/python (pip install -e '.[dev]' dmgbuild)
#
# Signing and notarization are driven by the environment, and skipped with a plain message when
# it does not provide them:
#   MACOS_SIGN_IDENTITY     "Developer ID Application: Studio (TEAMID)", in the login keychain
#   MACOS_NOTARY_PROFILE    a notarytool keychain profile (xcrun notarytool store-credentials)
# Sign for anything but a try-out: the keychain ties PostFlow's saved sign-in to the app's
# signature (an unsigned or ad-hoc-signed build asks for the keychain again after every update),
# and macOS shows notifications only for a stably signed app.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}

"$PY" installers/fetch_cloudflared.py
"$PY" -m PyInstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller build.spec
VERSION=$("$PY" -c 'import app; print(app.__version__)')
APP=dist/PostFlow.app
DMG="dist/PostFlow-$VERSION-macos-$(uname -m).dmg"

if [ -n "${MACOS_SIGN_IDENTITY:-}" ]; then
    codesign --force --deep --options runtime --timestamp \
        --entitlements installers/macos/entitlements.plist --sign "$MACOS_SIGN_IDENTITY" "$APP"
    codesign --verify --strict --verbose=2 "$APP"
else
    echo "NOT SIGNED: MACOS_SIGN_IDENTITY is not set. Fine for a try-out; for editors, sign it:" \
         "the keychain asks again after every update and notifications may not show." >&2
fi

rm -f "$DMG"
"$PY" -m dmgbuild -s installers/macos/dmg_settings.py -D app="$APP" "PostFlow $VERSION" "$DMG"

if [ -n "${MACOS_SIGN_IDENTITY:-}" ]; then
    codesign --force --timestamp --sign "$MACOS_SIGN_IDENTITY" "$DMG"
fi
if [ -n "${MACOS_NOTARY_PROFILE:-}" ] && [ -n "${MACOS_SIGN_IDENTITY:-}" ]; then
    xcrun notarytool submit "$DMG" --keychain-profile "$MACOS_NOTARY_PROFILE" --wait
    xcrun stapler staple "$DMG"
else
    echo "NOT NOTARIZED: MACOS_NOTARY_PROFILE (and MACOS_SIGN_IDENTITY) not set. Gatekeeper will" \
         "refuse to open the app on other Macs until it is notarized." >&2
fi
echo "built: $DMG"
