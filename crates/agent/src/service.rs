//! Installing the agent as a system service (systemd unit on Linux, launchd daemon on
//! macOS) and removing it (issue #10: `install`/`uninstall`). Not written yet.
