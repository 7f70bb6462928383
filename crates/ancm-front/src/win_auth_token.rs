//! TODO(helper): win_auth_token
