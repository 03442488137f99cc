import TesseraScaling
print("scale-test")
