print("assetd")
