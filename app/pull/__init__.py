"""Pull mode: Frame.io fetches a published file from this machine through a tunnel."""
