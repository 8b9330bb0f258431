"""Is SD lossless here, and which draft length pays: equivalence, text-quality scores, gamma model."""
