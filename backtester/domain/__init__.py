"""The shared language of every module: pure types, no behaviour beyond small value helpers."""
