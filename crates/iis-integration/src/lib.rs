//! iis-integration
