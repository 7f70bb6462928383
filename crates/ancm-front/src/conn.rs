//! TODO(helper): conn
