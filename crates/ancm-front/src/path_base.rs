//! TODO(helper): path_base
