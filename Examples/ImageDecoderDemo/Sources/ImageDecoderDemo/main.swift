print("image-decoder-demo: not yet implemented")
