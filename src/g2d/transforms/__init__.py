"""Signal transforms shared by dataset sources: audio spectrograms, video frame sampling."""
