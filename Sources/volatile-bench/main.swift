print("volatile-bench: not yet implemented")
