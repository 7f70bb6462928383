//! TODO(helper): client_cert
