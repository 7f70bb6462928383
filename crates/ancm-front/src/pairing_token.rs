//! TODO(helper): pairing_token
