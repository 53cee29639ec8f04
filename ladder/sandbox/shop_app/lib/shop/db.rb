require "pg"

module Shop
  # One connection per thread to SHOP_DATABASE_URL; every query goes through DB.query, so a
  # tracer sees the SQL (`rbtrace -m 'Shop::DB.query(sql)'`).
  module DB
    def self.connection
      Thread.current[:shop_pg] ||= PG.connect(ENV.fetch("SHOP_DATABASE_URL"))
    end

    def self.query(sql, params = [])
      connection.exec_params(sql, params).to_a
    end
  end
end
