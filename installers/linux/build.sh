#!/usr/bin/env bash
# Build PostFlow for Linux from a checkout: the one-folder bundle (dist/PostFlow/), a tar.gz
# with a .desktop file, an icon and a per-user installer (dist/PostFlow-VERSION-linux-ARCH.tar.gz),
# and an AppDir for appimagetool (dist/PostFlow.AppDir; see docs/building.md).
#
#     installers/linux/build.sh            # with .venv/bin/python (pip install -e '.[dev]')
#     PYTHON=python3 installers/linux/build.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
HERE=installers/linux

"$PY" -m PyInstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller build.spec
VERSION=$("$PY" -c 'import app; print(app.__version__)')
ARCH=$(uname -m)
STAGE="dist/PostFlow-$VERSION-linux-$ARCH"

rm -rf "$STAGE" dist/PostFlow.AppDir
mkdir -p "$STAGE"
cp -a dist/PostFlow "$STAGE/PostFlow"
cp "$HERE/postflow.desktop" resources/icons/postflow.png "$HERE/install.sh" "$STAGE/"
chmod +x "$STAGE/install.sh"
tar -C dist -czf "$STAGE.tar.gz" "$(basename "$STAGE")"
rm -rf "$STAGE"

APPDIR=dist/PostFlow.AppDir
mkdir -p "$APPDIR/usr/lib"
cp -a dist/PostFlow "$APPDIR/usr/lib/postflow"
cp "$HERE/AppRun" "$APPDIR/AppRun"
chmod +x "$APPDIR/AppRun"
sed 's|^Exec=.*|Exec=postflow|' "$HERE/postflow.desktop" > "$APPDIR/postflow.desktop"
cp resources/icons/postflow.png "$APPDIR/postflow.png"
ln -sf postflow.png "$APPDIR/.DirIcon"

du -sh dist/PostFlow "$STAGE.tar.gz" | sed 's/^/built: /'
echo "AppDir ready: appimagetool $APPDIR dist/PostFlow-$VERSION-$ARCH.AppImage"
