"""QA chatbot: answer a question with the stored answer of the most similar stored question."""
