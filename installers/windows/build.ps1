# Build PostFlow's Windows installer from a checkout, on Windows (NSIS 3.08+ on PATH: makensis):
#
#     powershell -ExecutionPolicy Bypass -File installers\windows\build.ps1
#
# Signing is driven by the environment and skipped with a plain message when absent:
#   WINDOWS_SIGN_PFX        the path of a code-signing certificate (.pfx)
#   WINDOWS_SIGN_PASSWORD   its password
# PostFlow.exe, the installer and its uninstaller are signed with the Windows SDK's signtool.
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..\..")
$py = if ($env:PYTHON) { $env:PYTHON } else { ".venv\Scripts\python.exe" }

& $py installers\fetch_cloudflared.py
if ($LASTEXITCODE) { exit $LASTEXITCODE }
& $py -m PyInstaller --noconfirm --log-level WARN --distpath dist --workpath build\pyinstaller build.spec
if ($LASTEXITCODE) { exit $LASTEXITCODE }
$version = & $py -c "import app; print(app.__version__)"
$setup = "dist\PostFlow-$version-setup.exe"

$nsisArgs = @("-DVERSION=$version", "-DPAYLOAD=$PWD\dist\PostFlow", "-DOUTFILE=$PWD\$setup")
$sign = $null
if ($env:WINDOWS_SIGN_PFX) {
    $signtool = Get-ChildItem "${env:ProgramFiles(x86)}\Windows Kits\10\bin\*\x64\signtool.exe" |
        Sort-Object FullName | Select-Object -Last 1
    if (-not $signtool) { throw "WINDOWS_SIGN_PFX is set but the Windows SDK's signtool.exe was not found" }
    $sign = "`"$($signtool.FullName)`" sign /f `"$env:WINDOWS_SIGN_PFX`" /p `"$env:WINDOWS_SIGN_PASSWORD`" /fd SHA256 /tr http://timestamp.digicert.com /td SHA256"
    $nsisArgs += "-DSIGN_COMMAND=$sign"
    cmd /c "$sign `"dist\PostFlow\PostFlow.exe`""
    if ($LASTEXITCODE) { exit $LASTEXITCODE }
} else {
    Write-Warning "NOT SIGNED: WINDOWS_SIGN_PFX is not set. SmartScreen will warn editors before the installer runs."
}
makensis @nsisArgs installers\windows\postflow.nsi
if ($LASTEXITCODE) { exit $LASTEXITCODE }
if ($sign) {
    cmd /c "$sign `"$setup`""
    if ($LASTEXITCODE) { exit $LASTEXITCODE }
}
Write-Output "built: $setup"
