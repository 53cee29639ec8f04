require "shop/db"

module Shop
  Order = Struct.new(:id, :user_id, :status, :total_cents) do
    def self.latest_for(user_id)
      row = DB.query(
        "SELECT id, user_id, status, total_cents FROM orders WHERE user_id = $1 " \
        "ORDER BY created_at DESC, id DESC LIMIT 1", [user_id]
      ).first
      row && from_row(row)
    end

    def self.for_user(user_id)
      DB.query(
        "SELECT id, user_id, status, total_cents FROM orders WHERE user_id = $1 ORDER BY id",
        [user_id]
      ).map { |row| from_row(row) }
    end

    def self.from_row(row)
      new(Integer(row["id"]), Integer(row["user_id"]), row["status"], Integer(row["total_cents"]))
    end
  end
end
