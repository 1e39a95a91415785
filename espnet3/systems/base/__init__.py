"""The base system every task-specific system extends."""
