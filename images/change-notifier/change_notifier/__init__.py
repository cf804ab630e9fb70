"""change-notifier: CloudEvents for completed file changes in a shared folder, at least once."""
