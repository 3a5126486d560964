"""Effects: the only code that writes to Qdrant or to state. Executes plans step by step, journaled, verifies
before any alias swap, rolls back."""
