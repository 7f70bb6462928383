//! TODO(helper): bundle
