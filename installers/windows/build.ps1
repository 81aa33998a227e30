# Build PostFlow's Windows installer from a checkout, on Windows (NSIS 3 on PATH: makensis):
#
#     powershell -ExecutionPolicy Bypass -File installers\windows\build.ps1
#
# Signing is driven by the environment and skipped with a plain message when absent:
#   WINDOWS_SIGN_PFX, WINDOWS_SIGN_PASSWORD   a code-signing certificate for signtool
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..\..")
$py = if ($env:PYTHON) { $env:PYTHON } else { ".venv\Scripts\python.exe" }

& $py installers\fetch_cloudflared.py
if ($LASTEXITCODE) { exit $LASTEXITCODE }
& $py -m PyInstaller --noconfirm --log-level WARN --distpath dist --workpath build\pyinstaller build.spec
if ($LASTEXITCODE) { exit $LASTEXITCODE }
$version = & $py -c "import app; print(app.__version__)"
$setup = "dist\PostFlow-$version-setup.exe"

function Sign($file) {
    if ($env:WINDOWS_SIGN_PFX) {
        signtool sign /f $env:WINDOWS_SIGN_PFX /p $env:WINDOWS_SIGN_PASSWORD /fd SHA256 /tr http://timestamp.digicert.com /td SHA256 $file
        if ($LASTEXITCODE) { exit $LASTEXITCODE }
    }
}
if (-not $env:WINDOWS_SIGN_PFX) {
    Write-Warning "NOT SIGNED: WINDOWS_SIGN_PFX is not set. SmartScreen will warn editors before the installer runs."
}
Sign "dist\PostFlow\PostFlow.exe"
makensis "-DVERSION=$version" "-DPAYLOAD=$PWD\dist\PostFlow" "-DOUTFILE=$PWD\$setup" installers\windows\postflow.nsi
if ($LASTEXITCODE) { exit $LASTEXITCODE }
Sign $setup
Write-Output "built: $setup"
