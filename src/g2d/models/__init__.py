"""Models: per-modality encoders, fusion modules, unimodal teachers and the multimodal student."""
