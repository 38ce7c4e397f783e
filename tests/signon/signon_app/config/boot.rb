# No Bundler: the gems are Debian's (ruby-rails, ruby-doorkeeper, ruby-sqlite3), already on the
# load path through rubygems-integration.
