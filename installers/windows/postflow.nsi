; PostFlow's Windows installer (NSIS 3, Unicode): a per-user install, no administrator needed.
;
;   makensis -DVERSION=0.1.0 -DPAYLOAD=dist\PostFlow -DOUTFILE=dist\PostFlow-0.1.0-setup.exe installers\windows\postflow.nsi
;
; PAYLOAD is the one-folder bundle build.spec makes (dist\PostFlow, with PostFlow.exe). The
; uninstaller keeps the user's queue, history and settings unless asked to remove them.
; Start at login writes the same Run value the app's own setting does (app/desktop/login_item.py).

Unicode true
!include "MUI2.nsh"
!include "Sections.nsh"
!include "LogicLib.nsh"

!ifndef VERSION
  !error "give the version: makensis -DVERSION=x.y.z …"
!endif
!ifndef PAYLOAD
  !error "give the bundle folder: makensis -DPAYLOAD=dist\PostFlow …"
!endif
!ifndef OUTFILE
  !define OUTFILE "PostFlow-${VERSION}-setup.exe"
!endif

!define APP "PostFlow"
!define EXE "PostFlow.exe"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\${APP}"
!define RUN_KEY "Software\Microsoft\Windows\CurrentVersion\Run"
!define DATA_DIR "$LOCALAPPDATA\${APP}"  ; platformdirs: settings, queue, history and logs

; Sign the uninstaller too, when build.ps1 signs (NSIS 3.08+ runs it on the written file).
!ifdef SIGN_COMMAND
  !uninstfinalize '${SIGN_COMMAND} "%1"'
!endif

; A running PostFlow holds its files. Ask it to close, wait up to 15 s, then end it: the
; engine is crash-safe (an upload cut off resumes, never doubles), files in use are not.
!macro StopPostFlow
  nsExec::Exec 'taskkill /IM "${EXE}"'
  Pop $0
  StrCpy $1 0
  ${Do}
    nsExec::Exec 'cmd /c tasklist /FI "IMAGENAME eq ${EXE}" /NH | find /I "${EXE}"'
    Pop $0  ; 0: find saw it, still running
    ${If} $0 != 0
      ${Break}
    ${EndIf}
    ${If} $1 >= 15
      nsExec::Exec 'taskkill /F /IM "${EXE}"'
      Pop $0
      Sleep 1000
      ${Break}
    ${EndIf}
    Sleep 1000
    IntOp $1 $1 + 1
  ${Loop}
!macroend

Name "${APP} ${VERSION}"
OutFile "${OUTFILE}"
RequestExecutionLevel user
InstallDir "$LOCALAPPDATA\Programs\${APP}"
InstallDirRegKey HKCU "Software\${APP}" "InstallDir"
!ifdef UNCOMPRESSED
  SetCompress off  ; CI's check that the script compiles: seconds instead of minutes
!else
  SetCompressor /SOLID lzma
!endif
BrandingText "${APP} ${VERSION}"

!define MUI_ICON "..\..\resources\icons\postflow.ico"
!define MUI_UNICON "..\..\resources\icons\postflow.ico"
!define MUI_ABORTWARNING
!define MUI_FINISHPAGE_RUN "$INSTDIR\${EXE}"
!define MUI_FINISHPAGE_RUN_TEXT "Start PostFlow now"

!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Section "PostFlow" SecApp
  SectionIn RO
  !insertmacro StopPostFlow
  RMDir /r "$INSTDIR\_internal"  ; an update leaves no library of the old version behind
  SetOutPath "$INSTDIR"
  File /r "${PAYLOAD}\*"
  WriteUninstaller "$INSTDIR\Uninstall.exe"
  WriteRegStr HKCU "Software\${APP}" "InstallDir" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "${APP}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher" "${APP}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\${EXE}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\Uninstall.exe"'
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1
SectionEnd

Section "Start menu entry" SecStartMenu
  CreateShortcut "$SMPROGRAMS\${APP}.lnk" "$INSTDIR\${EXE}" "" "$INSTDIR\${EXE}" 0
SectionEnd

Section /o "Start PostFlow when I log in" SecLogin
  WriteRegStr HKCU "${RUN_KEY}" "${APP}" '"$INSTDIR\${EXE}"'
SectionEnd

LangString DESC_App ${LANG_ENGLISH} "PostFlow itself (required)."
LangString DESC_StartMenu ${LANG_ENGLISH} "A PostFlow entry in the Start menu."
LangString DESC_Login ${LANG_ENGLISH} "Start PostFlow in the notification area at every login (changeable later in Settings → General)."
!insertmacro MUI_FUNCTION_DESCRIPTION_BEGIN
  !insertmacro MUI_DESCRIPTION_TEXT ${SecApp} $(DESC_App)
  !insertmacro MUI_DESCRIPTION_TEXT ${SecStartMenu} $(DESC_StartMenu)
  !insertmacro MUI_DESCRIPTION_TEXT ${SecLogin} $(DESC_Login)
!insertmacro MUI_FUNCTION_DESCRIPTION_END

Section "Uninstall"
  !insertmacro StopPostFlow
  Delete "$SMPROGRAMS\${APP}.lnk"
  DeleteRegValue HKCU "${RUN_KEY}" "${APP}"
  ; Only what the installer put there: the folder may be one the user chose and also uses.
  RMDir /r "$INSTDIR\_internal"
  Delete "$INSTDIR\${EXE}"
  Delete "$INSTDIR\Uninstall.exe"
  RMDir "$INSTDIR"
  DeleteRegKey HKCU "${UNINSTALL_KEY}"
  DeleteRegKey HKCU "Software\${APP}"
  ; The queue, the history of what was delivered and the settings stay unless the user says so:
  ; a reinstall then carries on without uploading anything twice.
  MessageBox MB_YESNO|MB_ICONQUESTION|MB_DEFBUTTON2 \
    "Also remove your PostFlow settings, queue and upload history?$\r$\n$\r$\nKeep them (No) if you will install PostFlow again: it then knows what it already delivered." \
    /SD IDNO IDNO keep
    RMDir /r "${DATA_DIR}"
  keep:
SectionEnd
