"""Redis state (history, dedupe, conversation turns) behind small, explicit classes."""
