"""decone.negation: the rule-based soft negatives of SNCSE, on real sentences (STS-B / SICK style captions and more)."""

from __future__ import annotations

import pytest

from decone.negation import negate, past_tense, third_person

# (sentence, its negation) pairs where negating the negation gives the sentence back
ROUND_TRIP = [
    ("A woman is slicing an onion.", "A woman is not slicing an onion."),
    ("Two dogs are running through a field.", "Two dogs are not running through a field."),
    ("The cat was sleeping on the mat.", "The cat was not sleeping on the mat."),
    ("The men were playing football.", "The men were not playing football."),
    ("I am happy with the result.", "I am not happy with the result."),
    ("She can swim very well.", "She cannot swim very well."),
    ("The company will announce its results on Monday.", "The company will not announce its results on Monday."),
    ("You should read this book.", "You should not read this book."),
    ("They have finished the work.", "They have not finished the work."),
    ("The storm has destroyed several houses.", "The storm has not destroyed several houses."),
    ("It's raining in the city.", "It's not raining in the city."),
    ("There's a cat on the roof.", "There's not a cat on the roof."),
    ("Is the market open today?", "Isn't the market open today?"),
    ("She has a dog.", "She does not have a dog."),
    ("We had dinner at eight.", "We did not have dinner at eight."),
    ("I have two children.", "I do not have two children."),
    ("He did his homework.", "He did not do his homework."),
    ("John's car is red.", "John's car is not red."),
]


@pytest.mark.parametrize("sentence, negated", ROUND_TRIP)
def test_insert_not_after_the_first_auxiliary_and_back(sentence, negated):
    assert negate(sentence) == negated
    assert negate(negated) == sentence


@pytest.mark.parametrize("sentence, positive", [
    ("The cat is not sleeping.", "The cat is sleeping."),
    ("We were not amused.", "We were amused."),
    ("He has never been to Paris.", "He has been to Paris."),
    ("Not all cats are black.", "All cats are black."),
    ("I can not go.", "I can go."),
])
def test_remove_not(sentence, positive):
    assert negate(sentence) == positive


@pytest.mark.parametrize("sentence, positive", [
    ("He isn't here.", "He is here."),
    ("They aren't ready.", "They are ready."),
    ("The door wasn't locked.", "The door was locked."),
    ("She can't swim.", "She can swim."),
    ("I cannot believe it.", "I can believe it."),
    ("He won't come tonight.", "He will come tonight."),
    ("You mustn't do that.", "You must do that."),
    ("We haven't seen the film.", "We have seen the film."),
    ("I shan't stay long.", "I shall stay long."),
    ("It doesn\u2019t matter.", "It matters."),  # a typographic apostrophe
])
def test_remove_contracted_negation(sentence, positive):
    assert negate(sentence) == positive


@pytest.mark.parametrize("sentence, positive", [
    ("He doesn't like apples.", "He likes apples."),
    ("She does not watch television.", "She watches television."),
    ("The baby doesn't cry at night.", "The baby cries at night."),
    ("I don't know the answer.", "I know the answer."),
    ("They do not eat meat.", "They eat meat."),
    ("They didn't go to the party.", "They went to the party."),
    ("He did not see the movie.", "He saw the movie."),
    ("She didn't try the soup.", "She tried the soup."),
    ("He didn't stop the car.", "He stopped the car."),
    ("The committee didn't understand the problem.", "The committee understood the problem."),
    ("She doesn't have a car.", "She has a car."),
    ("He doesn't really like it.", "He really likes it."),
    ("Don't go home!", "Go home!"),
])
def test_remove_do_support(sentence, positive):
    assert negate(sentence) == positive


@pytest.mark.parametrize("sentence, positive", [
    ("Don't you like it?", "Do you like it?"),  # an inverted question keeps its auxiliary
    ("I don't.", "I do."),  # no verb to inflect
])
def test_do_support_kept_where_there_is_no_verb_to_inflect(sentence, positive):
    assert negate(sentence) == positive


@pytest.mark.parametrize("sentence, negated", [
    ("A man plays the guitar.", "It is not true that a man plays the guitar."),
    ("The dogs bark at night.", "It is not true that the dogs bark at night."),
    ("Birds fly south in winter.", "It is not true that Birds fly south in winter."),  # a capital is kept
])
def test_no_auxiliary_gets_the_prefix_and_loses_it_again(sentence, negated):
    assert negate(sentence) == negated
    assert negate(negated) == sentence


def test_contraction_of_will_is_expanded():
    assert negate("I'll call you tomorrow.") == "I will not call you tomorrow."
    assert negate("I will not call you tomorrow.") == "I will call you tomorrow."


def test_sentence_initial_auxiliary_outside_a_question_is_not_an_auxiliary():
    assert negate("Will Smith is an actor.") == "Will Smith is not an actor."


def test_text_without_words_is_unchanged():
    assert negate("") == ""
    assert negate("  ") == "  "
    assert negate("123 !") == "123 !"


def test_spacing_and_other_words_are_kept():
    assert negate("  The  cat   is sleeping ,  maybe.") == "  The  cat   is not sleeping ,  maybe."


@pytest.mark.parametrize("verb, past, third", [
    ("go", "went", "goes"), ("like", "liked", "likes"), ("try", "tried", "tries"), ("stop", "stopped", "stops"),
    ("watch", "watched", "watches"), ("play", "played", "plays"), ("understand", "understood", "understands"),
    ("have", "had", "has"), ("do", "did", "does"), ("open", "opened", "opens"), ("fix", "fixed", "fixes"),
])
def test_inflection(verb, past, third):
    assert past_tense(verb) == past
    assert third_person(verb) == third
