"""Media input: probing, streaming decode to 16 kHz mono float32, and speech detection."""

from transcriber.media.decode import MediaInfo, probe, stream_audio
from transcriber.media.frames import SAMPLE_RATE

__all__ = ["SAMPLE_RATE", "MediaInfo", "probe", "stream_audio"]
