@echo off
rem PhotoMap native-messaging host launcher, written by `photomapd install`; the host manifest's "path" points here.
rem The browser's environment passes through; PHOTOMAP_*_DIR set at install time are defaults only.
@ENV_DEFAULTS@
"@PYTHON@" -m photomapd native-host -- %*
