//! TODO(helper): module_headers
