"""What a reader of the record uses: the static site and the interactive explore notebook's logic."""
