#!/bin/sh
# PhotoMap native-messaging host launcher, written by `photomapd install`; the host manifest's "path" points here.
# The browser starts it with the browser's own environment, which is passed through unchanged; PHOTOMAP_*_DIR that
# were set when it was installed are defaults for a browser that does not set them.
@ENV_DEFAULTS@
exec @PYTHON@ -m photomapd native-host -- "$@"
