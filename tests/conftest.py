"""Suite-wide setup."""

from __future__ import annotations

import signal

# A suite started in the background of a non-interactive shell (`bash .ci/run &`, nohup)
# inherits SIGINT ignored, and so would every node and devnet it starts: Python keeps an
# ignored SIGINT ignored. The tests stop devnets with Ctrl-C (SIGINT), as a user at a
# terminal does, so the suite restores the disposition a terminal's foreground job has;
# children then start with SIGINT at its default again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
