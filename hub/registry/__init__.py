"""What the hub knows about the places ratings come from: halls and departments (service),
and the checks of their codes, 行政区划 and unified social credit codes (codes)."""
