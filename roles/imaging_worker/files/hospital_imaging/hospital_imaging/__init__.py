"""hospital.cloud imaging worker: a crash-safe, parallel OpenCV pipeline over medical images."""

__version__ = "0.1.0"
