"""Video Transcriber: offline transcription of video and audio."""

__version__ = "0.1.0"
