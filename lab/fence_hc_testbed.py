# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TEST BED ONLY: the power fence of a virtual rack's host (a systemd-nspawn container).

The rack's "power switch" (lab/power.py, started by the test on the rack's gateway address) stops a host by
killing its container by PID. This agent speaks to it like fence_ipmilan speaks to a BMC: --ip, --ipport,
--password (or --password-script), --plug (the host name). Real racks use fence_ipmilan or fence_redfish."""

import atexit
import json
import logging
import sys
import time
import urllib.error
import urllib.request

sys.path.append("/usr/share/fence")
from fencing import all_opt, atexit_handler, check_input, fence_action, process_input, show_docs  # noqa: E402


def _call(options, method, action, attempts=4):
    """The switch's answer; a few attempts, as a BMC's agent retries (seen once: a connect that did not complete
    within 3 s right after a host of the rack died)."""
    url = "http://%s:%s/%s/%s" % (options["--ip"], options["--ipport"], action, options["--plug"])
    req = urllib.request.Request(url, method=method, headers={"X-HC-Token": options.get("--password", "")})
    for attempt in range(1, attempts + 1):
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return json.loads(resp.read().decode() or "{}")
        except urllib.error.HTTPError as exc:
            logging.error("Failed: %s %s: %s", method, url, exc)
            sys.exit(1)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            logging.warning("%s %s (attempt %d): %s", method, url, attempt, exc)
            if attempt == attempts:
                logging.error("Failed: %s %s: %s", method, url, exc)
                sys.exit(1)
            time.sleep(2)
    return {}


def get_power_status(_conn, options):
    return _call(options, "GET", "status").get("power", "unknown")


def set_power_status(_conn, options):
    _call(options, "POST", options["--action"])


def main():
    device_opt = ["ipaddr", "ipport", "passwd", "port", "no_login"]
    atexit.register(atexit_handler)
    all_opt["ipport"]["default"] = "8623"
    options = check_input(device_opt, process_input(device_opt))
    show_docs(options, {"shortdesc": "Test bed power fence (hospital.cloud virtual rack)",
                        "longdesc": "Stops a virtual rack's host by PID through the test bed's power switch.",
                        "vendorurl": "https://github.com/hospital-cloud"})
    sys.exit(fence_action(None, options, set_power_status, get_power_status))


if __name__ == "__main__":
    main()
