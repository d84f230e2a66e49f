"""Mathematics shared by several plugin families (one implementation each)."""
