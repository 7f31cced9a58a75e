"""scalezero_adapters: every task behind one TaskSpec (in progress)."""
