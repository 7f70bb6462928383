//! TODO(helper): forward
