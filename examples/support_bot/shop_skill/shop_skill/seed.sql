-- Made-up orders of the example shop "Northwind Gadgets".
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer TEXT NOT NULL,
    status TEXT NOT NULL,
    carrier TEXT,
    tracking TEXT,
    expected TEXT,
    note TEXT
);
CREATE TABLE items (order_id INTEGER NOT NULL REFERENCES orders(id), name TEXT NOT NULL);

INSERT INTO orders VALUES
  (1001, 'ann@example.com', 'delivered', 'PostNL', 'NW1001NL', '2026-11-10', NULL),
  (1002, 'bob@example.com', 'shipped',   'DHL',    'NW1002DE', '2026-11-24', NULL),
  (1234, 'cy@example.com',  'delayed',   'DHL',    'NW1234DE', '2026-11-27',
         'The parcel missed its connection at the Rotterdam hub and is back on its way'),
  (1500, 'dee@example.com', 'processing', NULL,    NULL,       '2026-11-29', 'It leaves the warehouse within 2 business days');
INSERT INTO items VALUES
  (1001, 'USB-C cable'), (1002, 'wireless mouse'), (1002, 'mouse pad'),
  (1234, 'noise-cancelling headphones'), (1500, 'mechanical keyboard');
