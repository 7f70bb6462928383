//! TODO(helper): limits
