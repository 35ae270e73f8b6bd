print("volatile-stress: not yet implemented")
