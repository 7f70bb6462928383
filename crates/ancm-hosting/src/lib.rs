//! ancm-hosting
