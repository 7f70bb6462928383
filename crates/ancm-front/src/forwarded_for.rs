//! TODO(helper): forwarded_for
