require "pg"

module Shop
  # Every query goes through DB.query, so a tracer sees the SQL (`rbtrace -m 'Shop::DB.query(sql)'`).
  # A connection per query, closed at once: the sandbox's staging database is renamed and dropped
  # by refresh-staging, which a connection held open would block.
  module DB
    def self.query(sql, params = [])
      connection = PG.connect(ENV.fetch("SHOP_DATABASE_URL"))
      connection.exec_params(sql, params).to_a
    ensure
      connection&.close
    end
  end
end
