"""Job queues, picked from `TRANSCRIBER_QUEUE_URL`."""
