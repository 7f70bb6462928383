//! ancm-front
