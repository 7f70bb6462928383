//! TODO(helper): forwarded_proto
