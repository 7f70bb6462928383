//! TODO(helper): hop_by_hop
